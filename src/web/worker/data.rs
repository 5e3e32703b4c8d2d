//! The worker's data: the MNIST bundle and CIFAR-10 fetched once from the site (or read from files the
//! user picked), cached for every later job.

use super::*;

/// Where the page serves the MNIST bundle, relative to the worker script.
pub(super) const MNIST_URL: &str = "data/mnist.bin";
/// Where a build that found CIFAR-10 ships it (scripts/stage_cifar.py).
pub(super) const CIFAR_URLS: [&str; 2] = ["data/cifar10/train.bin", "data/cifar10/test.bin"];

pub(super) async fn fetch_bytes(url: &str) -> Result<Vec<u8>, LabError> {
    let fail = |e: JsValue| LabError::io(url, format!("{e:?}"));
    let resp: web_sys::Response = JsFuture::from(scope().fetch_with_str(url)).await.map_err(fail)?.unchecked_into();
    if resp.status() == 404 {
        return Err(LabError::DataMissing(format!("{url} is not on this site")));
    }
    if !resp.ok() {
        return Err(LabError::io(url, format!("HTTP {}", resp.status())));
    }
    let buf = JsFuture::from(resp.array_buffer().map_err(fail)?).await.map_err(fail)?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

pub(super) async fn load(state: &Rc<RefCell<State>>, dataset: DatasetKind) -> Result<Rc<DataSource>, LabError> {
    match dataset {
        DatasetKind::Mnist => {
            if let Some(d) = state.borrow().mnist.clone() {
                return Ok(d);
            }
            let bytes = fetch_bytes(MNIST_URL).await?;
            let data = Rc::new(DataSource::Pool(mnist::decode_bundle(&bytes, MNIST_URL)?));
            state.borrow_mut().mnist = Some(data.clone());
            Ok(data)
        }
        DatasetKind::Cifar10 => {
            if let Some(d) = state.borrow().cifar.clone() {
                return Ok(d);
            }
            let mut sets = Vec::new();
            for url in CIFAR_URLS {
                let bytes = fetch_bytes(url).await.map_err(|e| match e {
                    LabError::DataMissing(_) => LabError::DataMissing(CIFAR_MISSING.into()),
                    other => other,
                })?;
                sets.push(cifar::parse_records(&bytes, url)?);
            }
            let test = sets.pop().expect("two sets were read");
            let train = sets.pop().expect("two sets were read");
            let data = Rc::new(DataSource::TrainTest { train, test });
            state.borrow_mut().cifar = Some(data.clone());
            Ok(data)
        }
    }
}

pub(super) const CIFAR_MISSING: &str = "CIFAR-10 is not shipped with this site: choose the official cifar-10-binary.tar.gz \
     (or CIFAR-format .bin files) in the Data step; it is read in your browser and never uploaded";

/// Reads files the user picked on the page (they never leave the browser).
pub(super) async fn read_files(files: &js_sys::Array) -> Result<Vec<(String, Vec<u8>)>, LabError> {
    let mut out = Vec::new();
    for f in files.iter() {
        let file: web_sys::File =
            f.dyn_into().map_err(|_| LabError::spec("the page sent something that is not a file"))?;
        let name = file.name();
        let buf = JsFuture::from(file.array_buffer()).await.map_err(|e| LabError::io(&name, format!("{e:?}")))?;
        out.push((name, js_sys::Uint8Array::new(&buf).to_vec()));
    }
    Ok(out)
}

/// Loads CIFAR-10 (from the picked files, else from the site) and hands the page a copy of the
/// records for its previews, moving the buffers rather than copying them.
pub(super) async fn load_cifar(state: Rc<RefCell<State>>, files: js_sys::Array) {
    let result = async {
        let note = if files.length() > 0 {
            let picked = read_files(&files).await?;
            let splits = cifar::from_files(picked)?;
            let note = format!("CIFAR-10 from {}", splits.source);
            state.borrow_mut().cifar = Some(Rc::new(DataSource::TrainTest { train: splits.train, test: splits.test }));
            note
        } else {
            load(&state, DatasetKind::Cifar10).await?;
            "CIFAR-10 shipped with this site".to_string()
        };
        let data = state.borrow().cifar.clone().expect("loaded above");
        let DataSource::TrainTest { train, test } = &*data else { unreachable!("CIFAR-10 is a train/test source") };
        Ok::<_, LabError>((note, train.len(), test.len(), cifar::encode_records(train), cifar::encode_records(test)))
    }
    .await;
    match result {
        Ok((note, n_train, n_test, train, test)) => {
            let msg = FromWorker::DataLoaded { dataset: DatasetKind::Cifar10, note, train: n_train, test: n_test };
            let (train, test) =
                (js_sys::Uint8Array::from(&train[..]).buffer(), js_sys::Uint8Array::from(&test[..]).buffer());
            let envelope = js_sys::Object::new();
            let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&envelope, &JsValue::from_str(k), v);
            let _ = set("msg", &JsValue::from_str(&msg.to_json()));
            let _ = set("train_records", &train);
            let _ = set("test_records", &test);
            let _ = scope().post_message_with_transfer(&envelope, &js_sys::Array::of2(&train, &test));
        }
        Err(e) => post(&FromWorker::DataFailed { dataset: DatasetKind::Cifar10, message: e.plain() }),
    }
}
